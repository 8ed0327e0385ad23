from mockd.cli import main

main()
