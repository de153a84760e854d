package app

// BeforeStoreClose makes Close call f just before it closes the store.
func BeforeStoreClose(a *App, f func()) { a.beforeStoreClose = f }

// OnTaskEnded makes each goroutine Run starts call f with its name as it
// ends.
func OnTaskEnded(a *App, f func(name string)) { a.taskEnded = f }
