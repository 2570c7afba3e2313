"""Cases: a referral's household looked up together, and the family picture of the answers.

model (what a case is: reference, purpose, stage, urgency, people and their relationship to
the child), casefile (reading one from YAML, errors with line and key), run (one lookup per
person through the broker, under the case's context), picture (people down the side,
agencies across the top, one answer state per cell).
"""
