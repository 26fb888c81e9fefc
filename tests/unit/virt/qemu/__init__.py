"""Unit tests of the QEMU driver: fakes stand in for qemu, qemu-img and QMP."""
