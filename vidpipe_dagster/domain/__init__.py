"""Pure rules of video-production pipelines: node types, validation, graphs, lifecycle."""
