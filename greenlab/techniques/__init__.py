"""One module per technique that two or more lessons use.

``prune`` (02, 13), ``quantize`` (03, 13), ``distill`` (04), ``lowrank`` (05, 13). A technique never
changes the model it is given: it returns a new one, so techniques chain like a scikit-learn
``Pipeline`` (lesson 13).
"""
