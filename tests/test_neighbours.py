"""`up` asks ARP again after 100 ms on the deployment's own bridges, and on no one else's."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_harness import progress
from redis_harness.deploy.neighbours import RETRANS_TIME_MS, tune_bridges
from redis_harness.profile.model import load_profile
from redis_harness.render.networks import bridge_names

PROFILE = load_profile("ci")


def neigh_dir(tmp_path: Path, *bridges: str) -> Path:
    for bridge in bridges:
        (tmp_path / bridge).mkdir()
        (tmp_path / bridge / "retrans_time_ms").write_text("1000\n")
    return tmp_path


def test_tune_bridges_sets_its_own_bridges_and_leaves_others(tmp_path: Path) -> None:
    own = sorted(set(bridge_names(PROFILE).values()))
    folder = neigh_dir(tmp_path, *own, "docker0", "rhx0000000000")
    assert tune_bridges(PROFILE, folder) == own
    assert all((folder / b / "retrans_time_ms").read_text().strip() == str(RETRANS_TIME_MS) for b in own)
    assert (folder / "docker0" / "retrans_time_ms").read_text() == "1000\n"
    assert (folder / "rhx0000000000" / "retrans_time_ms").read_text() == "1000\n", "another deployment's"
    assert tune_bridges(PROFILE, folder) == [], "already set: nothing written again"


def test_a_bridge_not_up_is_skipped_and_no_root_is_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = sorted(set(bridge_names(PROFILE).values()))
    folder = neigh_dir(tmp_path, own[0])
    notes: list[str] = []
    monkeypatch.setattr(progress, "note", notes.append)
    setting = folder / own[0] / "retrans_time_ms"
    setting.unlink()
    setting.symlink_to("/proc/version")  # readable, and not writable even by root
    (folder / own[0]).mkdir(exist_ok=True)
    assert tune_bridges(PROFILE, folder) == []
    assert notes and "needs root" in notes[0] and own[0] in notes[0]
