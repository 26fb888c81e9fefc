"""The conductor's multi-step flows, one module per task (migrate, live_migrate, ...)
over a small shared base (base.py)."""
