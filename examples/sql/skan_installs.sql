-- SKAdNetwork installs, deduplicated, with conversion values
--
-- Answers: how many SKAN installs per day, network, SKAN campaign and conversion value?
-- An install reaches Adjust once from the winning network (sk_install) and often
-- again from the device (sk_install_direct, iOS 15+): both carry Apple's transaction id, so they
-- are counted once per sk_transaction_id; when a network sends none, per nonce; when neither was
-- sent, per callback; SKAN 4 sends up to three postbacks per transaction, so the key is the
-- transaction and its sk_postback_sequence_index (0 when not sent: the install's postback; 1 and 2
-- are the later windows). The network's copy is preferred for the attribution fields. The conversion
-- value is sk_conversion_value, or Apple's `conversion-value` in sk_payload when the column is
-- empty (NULL = no conversion value, e.g. a postback after the SKAN 4 privacy threshold).
-- Qualifier postbacks (sk_qualifier: networks that did not win) are not installs.
-- Reads:   adjust.skan (the sk_* kinds, FINAL: each callback once). Sandbox traffic is left out.
-- Run:     clickhouse-client --multiquery < examples/sql/skan_installs.sql
--          curl -sS 'http://127.0.0.1:8123/' --data-binary @examples/sql/skan_installs.sql
--          Another database: sed 's/adjust\./mydb./g' <file> | clickhouse-client --multiquery
--          Edit date_from / date_to first. Runs on ClickHouse 18.16 and current versions.
SELECT
    day,
    network_name,
    sk_campaign_id,
    postback_index,
    conversion_value,
    count() AS installs
FROM
(
    WITH
        toDate('2024-01-01') AS date_from,
        today() AS date_to
    SELECT
        if(sk_transaction_id != '', sk_transaction_id,
            if(nonce != '', nonce, toString(callback_id))) AS install_key,
        ifNull(sk_postback_sequence_index, 0) AS postback_index,
        min(event_date) AS day,
        argMax(network_name, activity_kind = 'sk_install') AS network_name,
        argMax(sk_campaign_id, activity_kind = 'sk_install') AS sk_campaign_id,
        max(coalesce(sk_conversion_value,
            if(visitParamHas(sk_payload, 'conversion-value'),
                visitParamExtractInt(sk_payload, 'conversion-value'), NULL))) AS conversion_value
    FROM adjust.skan
    WHERE activity_kind IN ('sk_install', 'sk_install_direct')
        AND event_date >= date_from AND event_date <= date_to
        AND environment != 'sandbox'
    GROUP BY install_key, postback_index
)
GROUP BY day, network_name, sk_campaign_id, postback_index, conversion_value
ORDER BY day, network_name, sk_campaign_id, postback_index, conversion_value;
