"""Loaded by the Python that runs Ansible's modules (PYTHONPATH, test only).

The openstack.cloud collection the `ansible` 12.3.0 package carries (2.5.0) reads
`openstack.version.__version__` after a bare `import openstack`, and openstacksdk
4.22 no longer imports that submodule with the package, so every module fails with
"module 'openstack' has no attribute 'version'". Importing it here is what a user
pairing these two releases has to do too."""

import openstack.version  # noqa: F401
