"""Resources: object storage, the Lambda invoker and the AI providers."""
