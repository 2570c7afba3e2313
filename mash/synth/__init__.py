"""Synthetic UK people and agency records, reproducible by seed. Never real data.

NHS numbers start with 99 (none issued to patients) and are unique within a population;
postcodes use real district formats with made-up units.
"""
