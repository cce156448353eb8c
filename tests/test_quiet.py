import logging
import os

from greenlab._internal import quiet as _quiet


def test_native_output_silences_descriptors_then_restores_them(capfd):
    with _quiet.native_output():
        os.write(1, b"from C, stdout\n")
        os.write(2, b"from C, stderr\n")
    with _quiet.native_output(fds=(2,)):
        os.write(1, b"kept\n")
        os.write(2, b"dropped\n")
    os.write(2, b"back\n")
    out, err = capfd.readouterr()
    assert out == "kept\n" and err == "back\n"


def test_loggers_raise_levels_for_the_block_only(caplog):
    log = logging.getLogger("greenlab-test-noisy")
    log.setLevel(logging.INFO)
    with caplog.at_level(logging.INFO, logger="greenlab-test-noisy"):
        with _quiet.loggers("greenlab-test-noisy"):
            log.warning("hidden")
            assert log.level == logging.ERROR
        log.warning("shown")
    assert log.level == logging.INFO
    assert [r.getMessage() for r in caplog.records] == ["shown"]
