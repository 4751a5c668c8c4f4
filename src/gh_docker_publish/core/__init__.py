"""The pure core: parsing, decisions and rendering with no I/O (see docs/ARCHITECTURE.md)."""
