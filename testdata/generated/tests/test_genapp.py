from genapp import banner
from genapp.__main__ import main


def test_banner_uses_greeting_lib():
    assert banner("Ada") == "[genapp] Hello, Ada!"


def test_main_prints_banner(capsys):
    assert main(["Grace", "Hopper"]) == 0
    assert capsys.readouterr().out == "[genapp] Hello, Grace Hopper!\n"
