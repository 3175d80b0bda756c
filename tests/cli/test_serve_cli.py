"""``aioir serve``: the models it offers, loopback by default, one-line errors, exit codes."""

from __future__ import annotations

import socket

import pytest

from aioir import cli
from aioir.apps.serve.server import RestoreServer
from aioir.cli import serve as serve_cli
from aioir.models import load_model, save_pretrained


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "tiny"
    save_pretrained(load_model("udair-tiny"), path)
    return str(path)


def test_defaults_agree_with_the_app():
    from aioir.apps import serve

    assert serve_cli.DEFAULT_HOST == serve.DEFAULT_HOST == "127.0.0.1"
    assert serve_cli.DEFAULT_PORT == serve.DEFAULT_PORT
    assert serve_cli.DEFAULT_MAX_UPLOAD_MB * 2**20 == serve.DEFAULT_MAX_UPLOAD


def test_serves_on_loopback_until_ctrl_c(tiny_model, tmp_path, monkeypatch, capsys):
    (tmp_path / "checkpoints" / "v9").mkdir(parents=True)
    (tmp_path / "checkpoints" / "v9" / "model.safetensors").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    seen = {}

    def serve_forever(self, poll_interval=0.5):
        seen["server"] = self
        raise KeyboardInterrupt

    monkeypatch.setattr(RestoreServer, "serve_forever", serve_forever)
    code = cli.main(["serve", "--port", "0", "--model", tiny_model])
    err = capsys.readouterr().err
    assert code == 0, err
    server = seen["server"]
    assert server.host == "127.0.0.1" and server.loopback
    assert list(server.service.choices) == [tiny_model, "default", "checkpoints/v9"]
    assert server.service._restorer[0] == (tiny_model, None)  # loaded before serving, no task
    lines = err.splitlines()
    assert lines == [f"aioir serve: serving {server.url} (Ctrl-C stops it)", "aioir serve: stopped"]


def test_port_in_use_is_one_line_exit_1(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["serve", "--port", str(port), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [f"aioir serve: error: 127.0.0.1:{port}: Address already in use"]


def test_a_model_that_cannot_be_used_is_exit_2(tmp_path, capsys):
    missing = tmp_path / "nothing-here"
    code = cli.main(["serve", "--port", "0", "--model", str(missing)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [f"aioir serve: error: {missing}: no such model file or folder"]


def test_bad_options_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--port", "-1"])
    assert exc.value.code == 2
    assert "must be >= 0" in capsys.readouterr().err
