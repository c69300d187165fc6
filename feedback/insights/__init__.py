"""Weekly insight digests and alerts, for CX leads (customer) and for HR (employee).

`service.make_digest` builds one audience's digest for one ISO week from the stored, tagged
feedback (`digest.build_payload`), finds what moved with tests that account for sample size
(`alerts`), renders Markdown and HTML (`render`), stores it as a `Digest` row, and
`service.deliver_digest` sends it to a Slack-compatible webhook and by email (`delivery`).
"""
