"""AI providers: one module per provider; ``local`` renders placeholder media with ffmpeg."""
