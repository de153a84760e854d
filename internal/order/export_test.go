package order

// QueuedOrders is how many submitted orders wait in b's input, not yet
// taken into a batch, so a test can know they are all in before it acts.
func QueuedOrders(b *Batcher) int { return len(b.in) }
