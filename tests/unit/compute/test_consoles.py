"""ConsoleService: which instances and console types get a console URL."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from novalet import config
from novalet.compute.consoles import ConsoleInvalidState, ConsoleService, InstanceNotReady
from novalet.compute.states import TaskState, VmState
from novalet.console.types import ConsoleTarget
from novalet.virt.driver import ConsoleUnavailable, InstanceNotFoundOnHost

UUID = "11111111-2222-3333-4444-555555555555"


class _Recorder:
    """Stands in for the compute RPC client and for ConsoleAuth."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def get_console(self, ctx: Any, host: str, uuid: str, kind: str) -> ConsoleTarget:
        self.calls.append(("get_console", host, uuid, kind))
        return ConsoleTarget("192.0.2.7", 5901)

    async def authorize(self, uuid: str, host: str, console_type: str,
                        target: ConsoleTarget) -> str:
        self.calls.append(("authorize", uuid, host, console_type, target))
        return "tok"


@pytest.fixture
def service() -> tuple[ConsoleService, _Recorder]:
    conf = config.Config()
    svc = ConsoleService(conf, None, None)  # type: ignore[arg-type]
    recorder = _Recorder()
    svc.compute = recorder  # type: ignore[assignment]
    svc.auth = recorder  # type: ignore[assignment]
    svc.host_up = _up  # type: ignore[method-assign]
    return svc, recorder


async def _up(host: str) -> bool:
    return host != "down-host"


async def test_a_host_that_is_down_or_lost_the_guest_makes_it_not_ready(
        service: tuple[ConsoleService, _Recorder]) -> None:
    svc, recorder = service
    with pytest.raises(InstanceNotReady):
        await svc.console_url(None, _instance(host="down-host"), "novnc")  # type: ignore[arg-type]
    assert recorder.calls == []  # no bus call to wait out

    async def lost(*args: Any) -> dict[str, Any]:
        raise InstanceNotFoundOnHost(uuid=UUID)
    recorder.get_console = lost  # type: ignore[method-assign]
    with pytest.raises(InstanceNotReady):
        await svc.console_url(None, _instance(), "novnc")  # type: ignore[arg-type]


async def test_a_host_without_the_display_names_the_console_type(
        service: tuple[ConsoleService, _Recorder]) -> None:
    svc, recorder = service

    async def no_spice(*args: Any) -> dict[str, Any]:
        raise ConsoleUnavailable(console_type="spice")
    recorder.get_console = no_spice  # type: ignore[method-assign]
    with pytest.raises(ConsoleUnavailable, match="spice-html5"):
        await svc.console_url(None, _instance(), "spice-html5")  # type: ignore[arg-type]


def _instance(vm_state: str = VmState.ACTIVE, task_state: str | None = None,
              host: str | None = "compute-1") -> Any:
    return SimpleNamespace(uuid=UUID, host=host, vm_state=vm_state, task_state=task_state)


async def test_asks_the_instances_host_and_binds_the_token_to_it(
        service: tuple[ConsoleService, _Recorder]) -> None:
    svc, recorder = service
    url = await svc.console_url(None, _instance(), "serial")  # type: ignore[arg-type]
    assert url == "ws://127.0.0.1:6083/?token=tok"
    assert recorder.calls == [
        ("get_console", "compute-1", UUID, "serial"),
        ("authorize", UUID, "compute-1", "serial", ConsoleTarget("192.0.2.7", 5901))]


@pytest.mark.parametrize("vm_state", [VmState.ACTIVE, VmState.PAUSED, VmState.RESCUED,
                                      VmState.RESIZED])
async def test_running_guests_have_consoles(service: tuple[ConsoleService, _Recorder],
                                            vm_state: str) -> None:
    assert await service[0].console_url(None, _instance(vm_state), "novnc")  # type: ignore[arg-type]


@pytest.mark.parametrize("instance", [
    _instance(VmState.BUILDING, TaskState.SPAWNING, host=None), _instance(host=None),
    _instance(VmState.STOPPED), _instance(VmState.SUSPENDED), _instance(VmState.ERROR),
    _instance(VmState.SHELVED_OFFLOADED, host=None)])
async def test_guests_not_running_are_not_ready(service: tuple[ConsoleService, _Recorder],
                                                instance: Any) -> None:
    with pytest.raises(InstanceNotReady, match=f"Instance {UUID} is not ready"):
        await service[0].console_url(None, instance, "novnc")  # type: ignore[arg-type]
    assert service[1].calls == []


@pytest.mark.parametrize("task_state", [TaskState.DELETING, TaskState.MIGRATING])
async def test_going_or_moving_guests_are_refused(service: tuple[ConsoleService, _Recorder],
                                                  task_state: str) -> None:
    with pytest.raises(ConsoleInvalidState, match=f"task_state {task_state}"):
        await service[0].console_url(None, _instance(task_state=task_state),  # type: ignore[arg-type]
                                     "serial")


@pytest.mark.parametrize("console_type", ["rdp-html5", "webmks", "spice-direct", "bogus"])
async def test_types_without_a_display(service: tuple[ConsoleService, _Recorder],
                                       console_type: str) -> None:
    with pytest.raises(ConsoleUnavailable, match=f"Unavailable console type {console_type}."):
        await service[0].console_url(None, _instance(), console_type)  # type: ignore[arg-type]


@pytest.mark.parametrize("section,console_type", [
    ("vnc", "novnc"), ("vnc", "xvpvnc"), ("spice", "spice-html5"), ("serial_console", "serial")])
async def test_disabled_displays(service: tuple[ConsoleService, _Recorder], section: str,
                                 console_type: str) -> None:
    svc, recorder = service
    svc.conf.set(section, "enabled", False)
    with pytest.raises(ConsoleUnavailable):
        await svc.console_url(None, _instance(), console_type)  # type: ignore[arg-type]
    assert recorder.calls == []
