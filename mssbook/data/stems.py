"""The MUSDB18 stem vocabulary shared by every dataset in mssbook."""

#: The four target sources of MUSDB18, in the order mssbook uses for stacked tensors.
SOURCES = ("vocals", "drums", "bass", "other")

#: Stream order inside a MUSDB18 ``.stem.mp4`` file (stream 0 is the mixture).
STEM_STREAMS = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}

#: MUSDB18's sample rate.
SAMPLE_RATE = 44100
