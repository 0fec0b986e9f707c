"""AWS CloudWatch metric alarms notifying an Amazon SNS topic with an HTTPS subscription.

What the model follows:

- A metric alarm evaluates its metric once per ``Period`` (60 s or 300 s); a period's
  datapoint breaches when the service was broken during that period (a 5xx count over the
  threshold). The alarm goes to ALARM when at least ``DatapointsToAlarm`` (M) of the
  last ``EvaluationPeriods`` (N) datapoints breach, and back to OK when fewer than M do
  (CloudWatch User Guide, "Evaluating an alarm",
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html).
  A datapoint is evaluated a little after its period closes (metrics arrive late), so
  ``StateChangeTime`` is at least M periods after the outage began: an outage shorter
  than that is never seen.
- Sometimes the metric stops arriving while the alarm is in ALARM (the load balancer
  reports nothing): the alarm goes to INSUFFICIENT_DATA before it goes to OK. That is not
  a recovery (TIMELINE.md rule 3): the incident resolves at the OK transition.
- Each transition is published to the topic of the alarm's actions; SNS POSTs it with
  ``Timestamp`` = publish time, signed (here with the test key, tests/fixtures/sns.py,
  as the tests sign). When an attempt is not answered in time, SNS retries it with the
  same ``MessageId`` and body (SNS Developer Guide, "Amazon SNS message delivery
  retries": the default HTTP/S policy retries 3 times, 20 s apart), so Hindsight stores
  one delivery and a copy.

What the payloads state (TIMELINE.md): the failure starts at the ALARM message's
``StateChangeTime``, is notified at its SNS ``Timestamp`` (retries keep it), and ends at
the OK message's ``StateChangeTime``. The subject, ``<account>/<region>/<alarm>``, names
no service, so the model returns a ``[services]`` pattern for it.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta

import orjson

from tests.fixtures.sns import TEST_TOPIC, sign, sns_time
from tests.scenarios.payloads import Recorded
from tests.simulation.tools.uptimerobot import exact
from tests.simulation.world import Observation, Report, ServicePlan, ms

SOURCE = "cloudwatch"
ACCOUNT = "123456789012"
REGION = "us-west-2"
SNS_RETRY_DELAY = timedelta(seconds=20)  # the default HTTP/S delivery policy's delay


def state_change_time(at: datetime) -> str:
    """CloudWatch's form: ``2025-03-14T10:04:52.614+0000``."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


class Alarm:
    def __init__(self, plan: ServicePlan, rng: random.Random) -> None:
        self.rng = rng
        self.name = f"{plan.name}-5xx"
        self.subject = f"{ACCOUNT}/{REGION}/{self.name}"
        self.period = rng.choice([60, 60, 300])
        self.evaluation_periods = rng.randint(1, 5)
        self.datapoints = rng.randint(1, self.evaluation_periods)
        # When a period's datapoint is evaluated: after the period closes, by the delay
        # the metric takes to arrive (CloudWatch evaluates every minute).
        self.lag = timedelta(seconds=rng.uniform(15, 75))
        self.phase = plan.begin + timedelta(seconds=rng.randrange(self.period))

    def transition(self, state: str, old: str, at: datetime, reason: str) -> Recorded:
        alarm = {
            "AlarmName": self.name, "AlarmDescription": None, "AWSAccountId": ACCOUNT,
            "NewStateValue": state, "NewStateReason": reason,
            "StateChangeTime": state_change_time(at), "Region": "US West (Oregon)",
            "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{self.name}",
            "OldStateValue": old,
            "Trigger": {"MetricName": "HTTPCode_Target_5XX_Count",
                        "Namespace": "AWS/ApplicationELB", "Statistic": "SUM",
                        "Dimensions": [{"value": f"app/{self.name}/0", "name": "LoadBalancer"}],
                        "Period": self.period, "EvaluationPeriods": self.evaluation_periods,
                        "DatapointsToAlarm": self.datapoints,
                        "ComparisonOperator": "GreaterThanThreshold", "Threshold": 25.0,
                        "TreatMissingData": "missing"},
        }
        published = ms(at + timedelta(milliseconds=self.rng.randint(30, 400)))
        message = sign({
            "Type": "Notification", "MessageId": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "TopicArn": TEST_TOPIC, "Subject": f'{state}: "{self.name}" in US West (Oregon)',
            "Message": json.dumps(alarm, separators=(",", ":")),
            "Timestamp": sns_time(published),
        }, version=self.rng.choice(["1", "2"]))
        headers = {"Content-Type": "text/plain; charset=UTF-8",
                   "x-amz-sns-message-type": "Notification",
                   "x-amz-sns-message-id": message["MessageId"],
                   "x-amz-sns-topic-arn": TEST_TOPIC,
                   "User-Agent": "Amazon Simple Notification Service Agent"}
        received = ms(published + timedelta(milliseconds=self.rng.randint(40, 1500)))
        return Recorded(SOURCE, received, headers, orjson.dumps(message),
                        key=f"sns-{message['MessageId']}")

    def delivered(self, first: Recorded) -> list[Recorded]:
        """The attempt, and SNS's retries when an attempt went unanswered."""
        attempts = [first]
        while self.rng.random() < 0.15 and len(attempts) < 4:
            attempts.append(attempts[-1].retried(attempts[-1].received_at + SNS_RETRY_DELAY))
        return attempts


def observe(plan: ServicePlan, rng: random.Random) -> Observation:
    alarm = Alarm(plan, rng)
    seen = Observation(services={plan.name: [exact(alarm.subject)]})
    step = timedelta(seconds=alarm.period)
    window, needed = alarm.evaluation_periods, alarm.datapoints
    for outage in plan.outages:
        # Periods k cover [phase + k·P, phase + (k+1)·P); the first one the outage touches:
        first = (outage.start - alarm.phase) // step
        last = (outage.end - alarm.phase) // step  # the last period it touches
        breaching = last - first + 1
        if breaching < needed:
            continue  # never M breaching datapoints: the alarm stayed OK
        # ALARM when the M-th breaching period has been evaluated; OK when, of the last N
        # periods, fewer than M breach again: after period last + (N - M) + 1 closes.
        fired = ms(alarm.phase + step * (first + needed) + alarm.lag)
        cleared_period = last + (window - needed) + 1
        cleared = ms(alarm.phase + step * (cleared_period + 1) + alarm.lag)
        down = alarm.transition(
            "ALARM", "OK", fired,
            f"Threshold Crossed: {needed} out of the last {window} datapoints were greater "
            f"than the threshold (25.0) (minimum {needed} datapoint for OK -> ALARM "
            "transition).")
        seen.deliveries += alarm.delivered(down)
        before_ok = "ALARM"
        if rng.random() < 0.2:  # the metric stopped arriving for a while
            gap = ms(fired + (cleared - fired) * rng.uniform(0.1, 0.9))
            if fired < gap < cleared:
                seen.deliveries += alarm.delivered(alarm.transition(
                    "INSUFFICIENT_DATA", "ALARM", gap,
                    f"Insufficient Data: {window} datapoints were unknown."))
                before_ok = "INSUFFICIENT_DATA"
        seen.deliveries += alarm.delivered(alarm.transition(
            "OK", before_ok, cleared,
            f"Threshold Crossed: no datapoints were greater than the threshold (25.0) "
            f"(minimum {needed} datapoint for ALARM -> OK transition)."))
        seen.reports.append(Report(
            outage=outage, monitor=alarm.name, started=fired,
            detected=datetime.fromisoformat(
                orjson.loads(down.body)["Timestamp"].replace("Z", "+00:00")),
            resolved=cleared,
        ))
    return seen


MODELS = {"cloudwatch": observe}
