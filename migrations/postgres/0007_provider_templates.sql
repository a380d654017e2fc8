-- Provider templates as the providers registered them (issue 13): one row per provider and
-- code; `doc` is the whole registration (domain::provider_template::ProviderTemplate).
CREATE TABLE provider_templates (
    provider     TEXT NOT NULL,              -- aliyun_sms, tencent_sms, wechat, aliyun_voice
    code         TEXT NOT NULL,              -- TemplateCode / TemplateId / template_id / TtsCode
    channel      TEXT NOT NULL,              -- sms, wechat, hotline
    doc          JSONB NOT NULL,             -- ProviderTemplate
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, code)
);
