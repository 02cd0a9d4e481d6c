"""Reading and writing PSG recordings, annotations and hypnograms."""
