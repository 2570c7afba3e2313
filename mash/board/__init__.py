"""The report for partners and the safeguarding board, from the broker's audit trail.

figures (what is counted, from "lookup" and "answers" entries; no personal data), suppress
(counts from 1 to 4 hidden, and a second cell where one alone would be recoverable), render
(JSON, CSV, and HTML with charts drawn by the vendored Chart.js). `mash report` and the
console's report page both use it.
"""
