-- Pushes the provider accepted but no receipt settled yet, oldest first per channel: what
-- the settling job (pipeline::settle) asks the provider about.
CREATE INDEX pushes_sent_waiting ON pushes (channel, updated_at) WHERE status = 'sent';
