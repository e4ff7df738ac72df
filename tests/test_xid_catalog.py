"""The shipped XID catalogue answers what a code means and what to do."""

from __future__ import annotations

from gpuops.core.xid_catalog import describe_xid, xid_catalog


def test_catalogue_has_every_row_of_the_shipped_file() -> None:
    catalog = xid_catalog()
    assert len(catalog) == 172
    assert min(catalog) == 1


def test_fallen_off_the_bus_names_its_action() -> None:
    info = describe_xid(79)
    assert info.mnemonic == "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS"
    assert info.immediate_action == "RESTART_BM"
    assert info.immediate_action_text == "Restart bare metal, system should be restarted"
    assert info.summary == "XID 79: GPU has fallen off the bus (RESTART_BM)"


def test_multiline_resolution_text_is_joined_into_one_line() -> None:
    assert "\n" not in describe_xid(95).immediate_action_text
    assert describe_xid(95).immediate_action_text.startswith("Refer to https://docs.nvidia.com/deploy/gpu-debug-guidelines")


def test_unknown_code_is_said_to_be_uncatalogued() -> None:
    info = describe_xid(99999)
    assert info.description == "not in NVIDIA's XID catalogue"
    assert info.summary == "XID 99999: not in NVIDIA's XID catalogue"
