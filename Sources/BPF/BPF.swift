// Placeholder: objects, loading and attaching land here.
