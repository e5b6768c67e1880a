"""Live channels over Redis: streams that are written by workers and relayed to browsers as SSE."""
