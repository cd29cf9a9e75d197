"""What a run is asked to do: the Settings, each field's declaration, presets, the schedule, the start."""
