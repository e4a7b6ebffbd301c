export DB_HOST=db.staging.example.internal
export QUEUE_HOST=queue.staging.example.internal
