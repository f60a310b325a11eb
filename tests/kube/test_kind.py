"""The kind provider with fake ``kind`` and ``docker`` executables on PATH (they record their argv)."""
import stat
from pathlib import Path

import pytest

from labkit.app import cli
from labkit.kube import kind

FAKE = """#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> "{record}"
{body}
"""


def fake_exe(bin_dir: Path, name: str, record: Path, body: str = "exit 0") -> Path:
    p = bin_dir / name
    p.write_text(FAKE.format(record=record, body=body))
    p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return p


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """PATH with only our fakes (plus /bin for sh/basename), LABKIT_CACHE in tmp."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv.log"
    record.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    for tool in ("docker", "kind"):  # make sure no real one shadows ours via /usr/bin
        if Path("/usr/bin", tool).exists():
            pytest.skip(f"/usr/bin/{tool} exists; cannot simulate its absence")
    return bin_dir, record


def argv_lines(record: Path) -> list[str]:
    return record.read_text().splitlines()


def test_create_runs_kind_with_labkit_config_and_own_kubeconfig(sandbox, tmp_path):
    bin_dir, record = sandbox
    fake_exe(bin_dir, "docker", record, "echo 28.2.2")
    fake_exe(bin_dir, "kind", record)
    kc = kind.create()
    lines = argv_lines(record)
    assert lines[0] == "docker info --format {{.ServerVersion}}"
    cfg = kind.config_path()
    expected_kc = tmp_path / "cache" / "clusters" / "kind-labkit" / "kubeconfig"
    assert lines[1] == f"kind create cluster --config {cfg} --name labkit --kubeconfig {expected_kc} --wait 180s"
    assert kc.kubeconfig == expected_kc and kc.context == "kind-labkit"
    assert expected_kc.parent.is_dir()


def test_config_is_control_plane_plus_two_workers_named_labkit():
    import yaml

    cfg = yaml.safe_load(kind.config_path().read_text())
    assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert cfg["name"] == "labkit"
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane", "worker", "worker"]
    assert cfg["networking"]["apiServerAddress"] == "127.0.0.1"


def test_cli_create_delete_status_with_fakes(sandbox, capsys):
    bin_dir, record = sandbox
    fake_exe(bin_dir, "docker", record, "echo 28.2.2")
    fake_exe(bin_dir, "kind", record, 'if [ "$1 $2" = "get clusters" ]; then echo labkit; fi')
    assert cli.main(["cluster", "create", "--provider", "kind"]) == 0
    out = capsys.readouterr().out
    assert "kind cluster 'labkit' ready" in out and "export KUBECONFIG=" in out
    assert cli.main(["cluster", "status", "--provider", "kind"]) == 0
    assert "running" in capsys.readouterr().out
    assert cli.main(["cluster", "delete", "--provider", "kind", "--name", "labkit"]) == 0
    kinds = [line for line in argv_lines(record) if line.startswith("kind ")]
    assert kinds[0].startswith("kind create cluster --config ")
    assert kinds[1] == "kind get clusters"
    assert kinds[2].startswith("kind delete cluster --name labkit --kubeconfig ")


def test_status_of_absent_kind_cluster_is_exit_1(sandbox, capsys):
    bin_dir, record = sandbox
    fake_exe(bin_dir, "docker", record)
    fake_exe(bin_dir, "kind", record, "echo other")
    assert cli.main(["cluster", "status", "--provider", "kind"]) == 1
    assert "not found" in capsys.readouterr().out


def test_no_docker_is_one_clear_message_exit_2(sandbox, capsys):
    bin_dir, record = sandbox
    fake_exe(bin_dir, "kind", record)
    assert cli.main(["cluster", "create", "--provider", "kind"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("labkit: error: ")
    assert "`docker` is not installed" in err and "--provider kwok" in err
    assert argv_lines(record) == []  # kind was never run


def test_docker_without_engine_is_one_clear_message_exit_2(sandbox, capsys):
    bin_dir, record = sandbox
    fake_exe(bin_dir, "docker", record,
             'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1')
    fake_exe(bin_dir, "kind", record)
    assert cli.main(["cluster", "create", "--provider", "kind"]) == 2
    err = capsys.readouterr().err
    assert "needs a running Docker engine" in err and "Cannot connect to the Docker daemon" in err
    assert [line.split()[0] for line in argv_lines(record)] == ["docker"]


def test_no_kind_is_one_clear_message_exit_2(sandbox, capsys):
    bin_dir, record = sandbox
    fake_exe(bin_dir, "docker", record)
    assert cli.main(["cluster", "delete", "--provider", "kind"]) == 2
    assert "needs the `kind` CLI" in capsys.readouterr().err


def test_kind_failure_shows_its_output(sandbox, capsys):
    bin_dir, record = sandbox
    fake_exe(bin_dir, "docker", record)
    fake_exe(bin_dir, "kind", record, 'echo "ERROR: failed to create cluster: node(s) already exist" >&2; exit 1')
    assert cli.main(["cluster", "create", "--provider", "kind"]) == 2
    err = capsys.readouterr().err
    assert "`kind create cluster` failed (exit 1)" in err and "node(s) already exist" in err
