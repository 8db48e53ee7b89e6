"""`records.ingest`: bulk ingestion of student records."""
