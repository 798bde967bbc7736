//! WireGuard tunnels and SD-WAN hand-off routes: not yet implemented (see docs/ARCHITECTURE.md).
