export DB_HOST=db.production.example.internal
export QUEUE_HOST=queue.production.example.internal
