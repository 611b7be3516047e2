"""Synthetic district generator: a realistic, noisy, fully known Shanting for tests and demos.

``generate_district(SynthConfig(children=60_000, seed=2026), Path("out"))`` writes the children (the
truth), what each department would deliver for each period (with the clerical noise real spreadsheets
carry), the provincial student-registry export, deferral/exemption applications and a manifest. The
truth files say which person every feed and registry row describes, so record linkage, validation and
enrollment verification can be scored. Nothing here is real personal data.
"""

from baoxue.synth.cli import main
from baoxue.synth.config import GENERATOR_VERSION, Manifest, NoiseRates, PopulationRates, SynthConfig
from baoxue.synth.generator import DEPARTMENTS, FEED_HEADER, generate_district

__all__ = [
    "DEPARTMENTS",
    "FEED_HEADER",
    "GENERATOR_VERSION",
    "Manifest",
    "NoiseRates",
    "PopulationRates",
    "SynthConfig",
    "generate_district",
    "main",
]
