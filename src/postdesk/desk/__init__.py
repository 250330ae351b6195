"""The Django app: the data model, the durable intake, the processing pipeline and the service layer."""
