"""The course machinery: in-notebook checks (``gl.checks``) and grading (``python -m greenlab.course.grade``)."""
