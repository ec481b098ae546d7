"""Job vocabulary shared by the engine, the cloud steps and the CLI (no heavy imports)."""

SAVE_TYPES = ("nosave", "save", "forcesave", "onlysave")
#: Pipeline windows: 60 s of media each, overlapping by 2 s so no frame or
#: landmark at a boundary is lost (overlaps are de-duplicated on merge).
SEGMENT_SECONDS = 60.0
SEGMENT_OVERLAP = 2.0
