"""Stage 5: a load run's data -> figures, gate verdicts, JSON, HTML and JUnit."""
