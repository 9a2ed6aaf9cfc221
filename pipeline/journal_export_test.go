package pipeline

// Crash stops j as a killed process would: what was flushed stays in the
// file, rows not yet flushed are lost, the zstd frame is not ended.
func (j *Journal) Crash() {
	close(j.stopSync)
	<-j.synced
	j.mu.Lock()
	defer j.mu.Unlock()
	j.f.Close()
	j.f = nil
}
