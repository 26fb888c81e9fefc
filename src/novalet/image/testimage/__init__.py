"""The tiny bootable test image (a CirrOS-like busybox guest) built from Debian packages."""

from novalet.image.testimage.builder import (
    IMAGE_NAME,
    ImageUpload,
    build_test_image,
    default_output,
    direct_boot_properties,
    image_properties,
    kernel_path,
    ramdisk_path,
    uploads,
)
from novalet.image.testimage.commands import BuildError, ToolMissing

__all__ = [
    "IMAGE_NAME",
    "BuildError",
    "ImageUpload",
    "ToolMissing",
    "build_test_image",
    "default_output",
    "direct_boot_properties",
    "image_properties",
    "kernel_path",
    "ramdisk_path",
    "uploads",
]
