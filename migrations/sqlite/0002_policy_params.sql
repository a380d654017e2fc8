-- Policy parameters: thresholds rules read by name (params.<name>), with values by
-- effective date and the document that set each value.

CREATE TABLE policy_params (
    name         TEXT PRIMARY KEY,
    description  TEXT NOT NULL,
    unit         TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE policy_param_values (
    name            TEXT NOT NULL REFERENCES policy_params(name) ON DELETE CASCADE,
    effective_from  TEXT NOT NULL,            -- YYYY-MM-DD
    value           REAL NOT NULL,
    legal_ref       TEXT NOT NULL,            -- document number, e.g. 沪人社规〔2023〕12号
    PRIMARY KEY (name, effective_from)
);
