from mockd.cli.main import main

main()
