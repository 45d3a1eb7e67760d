-- Template links of each tenant's authorization model, as a JSON array of
-- {id, template, principal?, resource?}, saved with the document.
ALTER TABLE cs_policy_documents ADD COLUMN links TEXT NOT NULL DEFAULT '[]';
