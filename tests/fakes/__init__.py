"""In-process fakes of the services node agents talk to, each an HTTP server on 127.0.0.1:<random port>.

`FakeImds`, `FakeAws`, `FakeConsul`, `FakeDocker`: start one with `with FakeX(...) as fake:`, point the
agent at `fake.url`, change its state from the test, and read back what the agent sent (`fake.requests`,
plus each fake's own records). Extend these (in their files) rather than writing a second fake.
"""
