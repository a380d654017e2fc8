-- The attribute catalogue (issue 12): per attribute name its Chinese label, type, unit,
-- value labels and whether it is personal; `doc` is the whole definition
-- (domain::attribute::AttributeDef).
CREATE TABLE attributes (
    name         TEXT PRIMARY KEY,
    doc          TEXT NOT NULL,              -- JSON AttributeDef
    updated_at   TEXT NOT NULL
);
