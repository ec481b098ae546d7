"""The test harness itself: moto applies DynamoDB requests one at a time, like the service."""

from __future__ import annotations

import threading

import boto3


def test_concurrent_queries_and_writes_on_one_partition_do_not_break_moto(aws):
    """Without ``serialize_dynamodb`` moto raises 'dictionary changed size during iteration' here."""
    client = boto3.client("dynamodb")
    client.create_table(
        TableName="harness",
        KeySchema=[{"AttributeName": "h", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "h", "AttributeType": "S"}, {"AttributeName": "r", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    errors: list[str] = []

    def work(worker: int) -> None:
        try:
            for j in range(300):
                client.put_item(TableName="harness", Item={"h": {"S": "p"}, "r": {"S": f"{worker}-{j}"}})
                client.query(TableName="harness", KeyConditionExpression="h = :h",
                             ExpressionAttributeValues={":h": {"S": "p"}}, Limit=5)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    count = client.scan(TableName="harness", Select="COUNT")["Count"]
    assert count == 4 * 300
