"""The QEMU virt driver: guests as detached qemu-system-x86_64 processes driven over QMP."""
