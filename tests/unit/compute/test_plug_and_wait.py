"""The compute manager's plug step (ComputeManager._plug_and_wait): the wait is
registered before the plug, so a report made during the plug call is not missed;
no wait where nothing reports; a timeout is fatal or, configured so, a warning."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.compute.manager import ComputeManager
from novalet.compute.payloads import ExternalEvent
from novalet.compute.vif_events import VIF_PLUGGED, VirtualInterfaceCreateException
from novalet.network.model import Vif
from novalet.network.rpcapi import PlugReport
from novalet.rpc.inprocess import InProcessBus
from novalet.virt.fake import FakeDriver
from tests.unit.network.test_vif_seam import make_vif


@dataclass
class Instance:
    """The fields of an InstancePayload the plug step reads."""

    uuid: str
    network_info: list[Vif]


@dataclass
class Plugger:
    """Plugs nothing; reports (into `manager`) during the plug call when `reports`."""

    reports_plugged: bool = True
    deliver: bool = True
    manager: ComputeManager | None = None
    reports: list[PlugReport | None] = field(default_factory=list)

    async def plug(self, vifs: list[Vif], device: str = "tap",
                   report: PlugReport | None = None) -> None:
        self.reports.append(report)
        if report is not None and self.deliver and self.manager is not None:
            for vif in vifs:  # before plug() returns, so before the wait begins
                self.manager.instance_events.deliver(ExternalEvent(
                    VIF_PLUGGED, report.instance_uuid, vif.id))

    async def unplug(self, vifs: list[Vif], device: str = "tap") -> None:
        pass


def manager_with(plugger: Plugger, tmp_path: Path, **options: object) -> ComputeManager:
    conf = config.Config()
    conf.set("DEFAULT", "host", "h1")
    conf.set("DEFAULT", "state_path", str(tmp_path))
    for name, value in options.items():
        conf.set("DEFAULT", name, value)
    manager = ComputeManager(conf, InProcessBus(default_timeout=5), FakeDriver(conf),
                             None, plugger)  # type: ignore[arg-type]
    plugger.manager = manager
    return manager


async def test_a_report_made_during_the_plug_call_is_not_missed(tmp_path: Path) -> None:
    plugger = Plugger()
    manager = manager_with(plugger, tmp_path, vif_plugging_timeout=5.0)
    started = time.monotonic()
    await manager._plug_and_wait(Instance("inst-1", [make_vif()]))  # type: ignore[arg-type]
    assert time.monotonic() - started < 1
    assert plugger.reports == [PlugReport("inst-1", "h1")]
    assert manager.instance_events.waiting("inst-1") == []


@pytest.mark.parametrize("options", [{"vif_plugging_timeout": 0.0}, {}])
async def test_no_wait_when_off_or_when_nothing_reports(tmp_path: Path,
                                                        options: dict[str, object]) -> None:
    plugger = Plugger(reports_plugged=bool(options), deliver=False)
    manager = manager_with(plugger, tmp_path, **options)
    started = time.monotonic()
    await manager._plug_and_wait(Instance("inst-1", [make_vif()]))  # type: ignore[arg-type]
    assert time.monotonic() - started < 1
    assert plugger.reports == [None]  # no report asked for


async def test_a_missing_report_is_fatal_or_a_warning(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    plugger = Plugger(deliver=False)
    manager = manager_with(plugger, tmp_path, vif_plugging_timeout=0.05)
    with pytest.raises(VirtualInterfaceCreateException, match=make_vif().id):
        await manager._plug_and_wait(Instance("inst-1", [make_vif()]))  # type: ignore[arg-type]
    manager.conf.set("DEFAULT", "vif_plugging_is_fatal", False)
    await manager._plug_and_wait(Instance("inst-2", [make_vif()]))  # type: ignore[arg-type]
    assert "starting the guest anyway" in caplog.text


@dataclass
class Conductor:
    """Records the build's action events; `gone` once the delete destroyed the row."""

    events: list[tuple[str, str]] = field(default_factory=list)
    gone: bool = False

    async def event_start(self, ctx: object, uuid: str, event: str, host: str) -> None:
        self.events.append((event, "start"))

    async def instance_update(self, ctx: object, uuid: str, values: dict[str, object],
                              expected_task_state: object = None) -> None:
        pass

    async def event_finish(self, ctx: object, uuid: str, event: str, result: str,
                           traceback: str | None = None) -> None:
        if self.gone:
            raise exceptions.NotFound()
        self.events.append((event, result))


@dataclass
class DeletedDuringPlug(Plugger):
    """A delete (terminate_instance: cancel, then unplug) lands while the plug call
    is still in flight: its unplug comes before the plug is done."""

    log: list[str] = field(default_factory=list)

    async def plug(self, vifs: list[Vif], device: str = "tap",
                   report: PlugReport | None = None) -> None:
        assert self.manager is not None and report is not None
        self.manager.instance_events.cancel(report.instance_uuid, "being deleted")
        self.log.append("unplug (terminate)")
        self.log.append("plug")

    async def unplug(self, vifs: list[Vif], device: str = "tap") -> None:
        self.log.append("unplug")


@pytest.mark.parametrize("gone", [False, True])
async def test_a_build_cancelled_by_a_delete_unplugs_again_and_closes_its_event(
        tmp_path: Path, gone: bool) -> None:
    plugger = DeletedDuringPlug()
    manager = manager_with(plugger, tmp_path, vif_plugging_timeout=5.0)
    conductor = Conductor(gone=gone)
    manager.conductor = conductor  # type: ignore[assignment]
    inst = Instance("inst-1", [make_vif()])
    inst.guest_spec = lambda: pytest.fail("the guest of a deleted build started")  # type: ignore[attr-defined]
    await manager._build(RequestContext.admin(), inst)  # type: ignore[arg-type]
    assert plugger.log == ["unplug (terminate)", "plug", "unplug"]  # the tap goes last
    event = "compute_build_and_run_instance"
    assert conductor.events == [(event, "start")] + ([] if gone else [(event, "Error")])
    assert manager.instance_events.waiting("inst-1") == []
