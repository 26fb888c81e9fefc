"""The network API (Neutron's v2.0 subset, mounted at /network); see docs/network-api.md."""
