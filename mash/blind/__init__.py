"""The blind broker: keyed match tokens, sealed subjects, sealed and signed answers.

The analyst's side and the agents share a federation linkage key that the broker never
holds. A lookup's first round carries only keyed tokens derived from the subject; only the
agencies holding a candidate receive the subject, sealed to their own key, in a second round;
every answer is signed by the answering agency, bound to the hash of the request and sealed to
the analyst's one-time key. The broker routes, audits the envelope, and reads nothing else.
"""
