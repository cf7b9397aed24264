package orchestrator

// noMetrics counts nothing, for an engine given no Metrics.
type noMetrics struct{}

func (noMetrics) PipelineCreated(TriggerKind) {}
func (noMetrics) JobEnded(Job)                {}
func (noMetrics) StatusPost(StatusResult)     {}
