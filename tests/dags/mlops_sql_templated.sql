-- Rendered by SqlExtractOperator (template_ext = .sql); :min_id / %(min_id)s is bound, not rendered.
SELECT id, name, '{{ ds }}' AS run_date, '{{ params.label }}' AS label
FROM {{ params.source }}
WHERE id >= {{ params.placeholder }}
ORDER BY id
