import os
from wizchat_management import WizChatClient, WizChatApiError

wizchat = WizChatClient(api_key=os.environ["WIZCHAT_API_KEY"])

try:
    # 1. List your chatbots.
    chatbots = wizchat.list_chatbots()
    chatbot_id = chatbots[0].id

    # 2. Export the current configuration as a desired-state document.
    config = wizchat.get_config(chatbot_id)

    # 3. Edit the document in memory (config-as-code).
    core = dict(config.spec.core or {})
    core["name"] = "Acme Support Bot"
    config.spec.core = core

    # 4. Preview the change with a dry-run — returns the reconcile plan, no writes.
    plan = wizchat.apply_config(chatbot_id, config, dry_run=True)
    print(plan.plan.summary)  # { create, update, delete, noop }

    # 5. Apply for real once the plan looks right.
    result = wizchat.apply_config(chatbot_id, config)
    print(result.applied)
except WizChatApiError as err:
    print(f"API error {err.status} [{err.code}]: {err.message}", err.details)
finally:
    wizchat.close()
