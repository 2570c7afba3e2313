"""Synthetic UK people and agency records, reproducible by seed. Never real data.

NHS numbers are drawn from the 999 range reserved for testing; postcodes use real district
formats with made-up units.
"""
